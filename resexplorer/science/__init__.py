"""The science on trained models: lesions, loss landscapes, Captum
attributions, test-time augmentation (tta.py, tta_eval.py), the ImageNet
classifier, and a run's model ready for uint8 images (inference.py)."""
