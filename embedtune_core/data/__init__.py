"""Data: reading and validating files (:mod:`.files`), reading through the registry and
converting between types (:mod:`.loading`), leakage-free splits for readers (:mod:`.splits`) and
statistics (:mod:`.stats`)."""
