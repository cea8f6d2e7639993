"""ResNet Explorer: plain and residual CIFAR nets, trained and looked inside.

The package never imports streamlit (but for the `app` command, which
starts the server); the app's pages call into it.
"""

__version__ = "0.1.0"
