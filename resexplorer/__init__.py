"""ResNet Explorer: plain and residual CIFAR nets, trained and looked inside.

The package never imports streamlit; the app's pages call into it.
"""

__version__ = "0.1.0"
