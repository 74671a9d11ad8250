"""The model's tokenizer and where the model's files are: below both the corpus, whose chunks are
windows of the model's tokens, and the embedding engine, which embeds them. Neither imports the
other for it, and a chunking worker imports no torch."""
