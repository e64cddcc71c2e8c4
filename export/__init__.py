"""Export tooling: TF Serving SavedModel (and, next, TFLite)."""
