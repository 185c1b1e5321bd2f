//! The Containerfile (Dockerfile) subset: FROM, RUN, COPY, ENV, WORKDIR, USER, ENTRYPOINT,
//! CMD, LABEL, ARG. (Interface stub.)
