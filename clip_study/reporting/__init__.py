"""Reporting: the summary of zero-shot against the probes, the markdown report and its figures."""
