"""The GenePheno model: pure networks and losses (module, losses), the training loop (train),
the model folder (checkpoint) and the configuration (config)."""
