import json

with open('/app/settings.json') as f:
    settings = json.load(f)
print('sample app listening on', settings['port'])
