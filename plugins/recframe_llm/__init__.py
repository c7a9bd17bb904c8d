"""Built-in LLM backends for the re-ranking stage: smollm2, openai_compatible, fake."""
