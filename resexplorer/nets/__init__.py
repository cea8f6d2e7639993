"""The nets: ModelConfig and the model-name grammar (config.py, plain
data), plain and residual CIFAR nets of 6n+2 layers with shortcut options
A, B and C (models.py), and the hooks that read what happens inside them
(probes.py), which training records every epoch and the analyses use."""
