from services.notifier.main import create_app
from shared.service import serve

serve("notifier", create_app)
