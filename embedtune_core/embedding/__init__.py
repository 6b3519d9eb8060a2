"""Models, encoding and retrieval: loading models offline first (:mod:`.models`), fast encoding
(:mod:`.encode`) and top-k search (:mod:`.search`)."""
