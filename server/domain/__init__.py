"""Domain rules in plain Python: roles and permissions, review states, version checks, spheroid validation.

Nothing here imports strawberry, SQLAlchemy, boto3 or Starlette (an import-linter contract checks it), so
every rule is tested without a database or a request.
"""
