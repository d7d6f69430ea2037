"""Evaluation (token perplexity, ASR WER, codec reconstruction): not built yet; see README "Status"."""
