"""Reference numbers from the paper (He et al. 2015, arXiv 1512.03385), to
draw beside our own curves. Errors in percent on the original CIFAR-10."""

# The paper's CIFAR-10 schedule: 64k iterations of batch 128 (section 4.2).
PAPER_ITERATIONS = 64_000

# Table 6: ResNet test error (%) by depth, option A.
TABLE6_RESNET_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
TABLE6_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}

# Fig. 6 (left), plain nets' final test error (%), read off the figure.
FIG6_PLAIN_TEST_ERROR = {20: 9.5, 32: 10.0, 44: 12.0, 56: 13.5}

CITATION = "He, Zhang, Ren, Sun: Deep Residual Learning for Image Recognition (2015), arXiv 1512.03385"


def paper_test_error(arch: str, depth: int) -> tuple[float, str] | None:
    """(error %, where it comes from) for a model the paper reports, else None."""
    if arch == "resnet" and depth in TABLE6_RESNET_TEST_ERROR:
        return TABLE6_RESNET_TEST_ERROR[depth], "Table 6"
    if arch == "plain" and depth in FIG6_PLAIN_TEST_ERROR:
        return FIG6_PLAIN_TEST_ERROR[depth], "Fig. 6, read off"
    return None
