"""Ranking maths: ranked runs against graded qrels (:mod:`.ranked`), metrics by name
(:mod:`.metrics`) and TREC files (:mod:`.trec`)."""
