"""Staged training of the UniAudio 2.0 model (DeepSpeed on Ray Train): not built yet; see README "Status"."""
