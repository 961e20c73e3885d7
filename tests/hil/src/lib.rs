//! Black-box client and device launcher for the ME_CAM test suite.
