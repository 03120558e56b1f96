"""Evaluation: prompts and zero-shot classifiers, similarity scores, the probes (torch, logistic,
few-shot) and the metrics every classifier is scored with."""
