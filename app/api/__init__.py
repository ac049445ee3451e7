from flask import Blueprint
bp = Blueprint("app_api___init___py", __name__)
