"""Training sentences: the sentence store v2 (:mod:`.store`, :mod:`.sentence`), the builders of the seven data
types (:mod:`.tasks`, :mod:`.text_only`) and the auditory-sentence strategies (:mod:`.strategies`, plus the
audio-level ``mixture`` / ``variation``), registered by kind (:mod:`.registry`) and run on Ray Data
(:mod:`.build`); :mod:`.validate` and :mod:`.stats` check and describe a store."""
