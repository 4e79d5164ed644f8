"""The HTTP routes, one module per resource; each builds an APIRouter from the config."""
