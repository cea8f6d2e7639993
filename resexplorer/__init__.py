"""ResNet Explorer: plain and residual CIFAR nets, trained and looked inside.

The package never imports streamlit (its `app` command starts Streamlit's
own command in its place); the app's pages call into it.
"""

__version__ = "0.1.0"
