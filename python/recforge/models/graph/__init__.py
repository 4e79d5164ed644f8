"""Graph recommenders trained with torch on the compiled propagation: LightGCN, BPRMF."""
