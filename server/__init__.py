"""The SpheroSeg GraphQL server: users, projects, images, segmentations, reviews and jobs.

Built in the server issues; it may import ``cluster``'s public API and never ``workbench``.
"""
