"""Where a domain's images come from: the built-in domains, SVHN, the Visual Decathlon, the
user's folders, and what fetching and unpacking them needs (downloads, safe tar, the registry
of the user's sources). Each source hands the pipeline (``core.data.pipeline``) its images."""
