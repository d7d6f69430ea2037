"""Training sentences: sentence stores (:mod:`.store`) and their builders (text-only: :mod:`.text_only`)."""
