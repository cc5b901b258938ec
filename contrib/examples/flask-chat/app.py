"""app.py: the page server of the flask-chat example (Flask, run by gunicorn).

    gunicorn --bind 127.0.0.1:8000 --workers 2 app:app

Serves the chat page (static/index.html, static/chat.js) and /whoami, which
answers with what this app was told about the client: the X-Forwarded-For,
X-Real-IP and X-Forwarded-Proto header fields gatehouse writes from the real
client address (after the PROXY header) and the request's scheme, and
remote_addr, the peer of this app's own socket (gatehouse, 127.0.0.1).
The chat itself goes to server.py over a WebSocket on /ws/, which gatehouse
sends to the other upstream: this app never sees it.
"""
from flask import Flask, jsonify, request

app = Flask(__name__, static_folder="static", static_url_path="/static")


@app.get("/")
def index():
    return app.send_static_file("index.html")


@app.get("/whoami")
def whoami():
    resp = jsonify({
        "x_forwarded_for": request.headers.get("X-Forwarded-For"),
        "x_real_ip": request.headers.get("X-Real-IP"),
        "x_forwarded_proto": request.headers.get("X-Forwarded-Proto"),
        "remote_addr": request.remote_addr,
    })
    resp.headers["Cache-Control"] = "no-store"
    return resp
