"""Run configuration: the frozen attrs schema (:mod:`.schema`), writing it back as TOML
(:mod:`.writer`) and the commented starter pipeline (:mod:`.starter`)."""
