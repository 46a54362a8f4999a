from services.console.main import create_app
from shared.service import serve

serve("console", create_app)
