from flask import Blueprint
bp = Blueprint("app_accounts_views_py", __name__)
