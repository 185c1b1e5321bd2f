//! An overlay upper directory as a layer tar. (Being written.)
