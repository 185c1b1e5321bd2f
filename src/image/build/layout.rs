//! Writing an OCI image layout or oci-archive. (Interface stub.)
