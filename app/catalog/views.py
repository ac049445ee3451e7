from flask import Blueprint
bp = Blueprint("app_catalog_views_py", __name__)
