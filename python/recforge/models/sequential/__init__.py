"""Sequential recommenders (Transformers over ordered histories): SASRec, BERT4Rec."""
