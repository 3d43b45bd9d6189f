//! Screen capture: grab a monitor or the whole desktop, downscale, blur,
//! encode to JPEG, and skip frames whose pixels did not change.
