from services.followup.main import create_app
from shared.service import serve

serve("followup", create_app)
