"""From a tuned model to what is deployed: export it (ONNX, int8 weights... each exporter a
plugin), measure every variant (backend x weights x Matryoshka dim x embedding precision) on the
held-out data in one run, and recommend the smallest, fastest one that keeps the quality.

- :mod:`.onnx_export`: the model to ONNX (pooling and normalisation in the graph, the tokenizer
  beside it) and int8 weights through onnxruntime's quantization;
- :mod:`.measure`: encoding every held-out text once per exported model, timing the encoding on
  the same texts with the same threads, and the metrics of each variant;
- :mod:`.deployment`: the whole run (:func:`.deployment.export_deployment`), the recommended
  variant, ``deployment.json`` and the variant folders;
- :mod:`.summary`: the table for the terminal and the report, and the plot.
"""
