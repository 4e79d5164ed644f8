"""Content-based recommenders: ContentKNN over item texts and attributes (issue 13)."""
