from services.escalation.main import create_app
from shared.service import serve

serve("escalation", create_app)
