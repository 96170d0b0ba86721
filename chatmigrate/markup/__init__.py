"""Source markup → canonical Markdown, one pure module per source.

Extractors call these as pure functions (a documented exception to the layering rule of DESIGN §8:
conversion needs the extractor's user and channel maps, and has no state of its own).
"""
