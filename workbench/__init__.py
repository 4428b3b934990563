"""The SpheroSeg desktop workbench (PySide6 + napari), a GraphQL client of the server.

Built in the desktop issue; it talks to the server only over HTTP and may import ``cluster``'s public API.
"""
