"""One module per dialect: frames in, canonical AgentEvents out."""
