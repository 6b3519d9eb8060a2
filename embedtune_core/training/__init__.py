"""Training on sentence-transformers' Trainer: arguments, the loop's guards, and the guide's
hyperparameter advice."""
