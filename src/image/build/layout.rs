//! Writing an OCI image layout or oci-archive. (Being written.)
