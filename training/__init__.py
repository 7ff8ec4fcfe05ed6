"""Training, evaluation and ONNX export of SketchLab's models (torch). Imports `sketchlab` for every stroke or raster
transform, so training and serving share one implementation."""
