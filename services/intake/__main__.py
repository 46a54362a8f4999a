from services.intake.main import create_app
from shared.service import serve

serve("intake", create_app)
