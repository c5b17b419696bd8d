"""The bench's Flask + Jinja2 peer for bench/templates.py (gunicorn -w 1): the same page
of 100 fortunes as bench/templates_app.c, from a Jinja2 template with autoescaping."""
from flask import Flask

app = Flask(__name__)

PAGE = """<!doctype html>
<html><head><title>Fortunes</title></head><body>
<table>
<tr><th>id</th><th>message</th></tr>
{% for f in fortunes %}<tr><td>{{ f.id }}</td><td>{{ f.message }}</td></tr>
{% endfor %}</table>
</body></html>
"""

FORTUNES = [{"id": i, "message": 'fortune #%d: <script>alert("a & b")</script> isn\'t safe' % i} for i in range(1, 101)]
TEMPLATE = app.jinja_env.from_string(PAGE)


@app.get("/")
def fortunes():
    return TEMPLATE.render(fortunes=FORTUNES)
