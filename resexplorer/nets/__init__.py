"""The nets: plain and residual CIFAR nets of 6n+2 layers with shortcut
options A, B and C (models.py; ModelConfig owns the model-name grammar), and
the hooks that read what happens inside them (probes.py), which training
records every epoch and the analyses use."""
