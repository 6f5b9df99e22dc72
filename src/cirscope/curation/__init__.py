"""Acting on findings: tags stored beside a space, exports of rows, and saved views.
"""
