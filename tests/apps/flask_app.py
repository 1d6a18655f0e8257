"""A Flask application (needs flask installed in the interpreter or virtualenv)."""
from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask\n"


@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data()


@app.route("/json")
def json_view():
    return {"path": request.path, "args": request.args.to_dict()}
