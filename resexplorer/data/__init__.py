"""The data: CIFAR-10, image folders and the generated set as cached uint8
tensors with batches and augmentation on the device (sources.py,
synthetic.py); untrusted uploads (images.py); the shipped sample images
(samples.py); JPEG image folders packed into one file (jpegpack.py)."""
