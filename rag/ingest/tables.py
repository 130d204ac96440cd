"""Spreadsheets as tables: .csv (standard library) and .xlsx (openpyxl, MIT).

Each sheet is a heading (its name) followed by its rows, one line per row with
cells joined by `` | ``; the first row is the header. Rows are marked as table
rows, so a chunk never cuts one in half.
"""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.documents import Document, TextBuilder
from rag.ingest.plaintext import read_text_file


class CsvLoader:
    """Comma- or tab-separated tables."""

    kind = "csv"
    suffixes = (".csv", ".tsv")

    def load(self, path: Path, name: str) -> list[Document]:
        text, encoding = read_text_file(path)
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
        except csv.Error:
            dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        try:
            rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
        except csv.Error as exc:
            raise DocumentError(f"{path}: not a readable CSV table ({exc}); skipped") from exc
        out = TextBuilder()
        out.table([row for row in rows if any(row)])
        return [out.document(name, path, "csv", encoding)]


class XlsxLoader:
    """Excel 2007+ workbooks (values as last saved; formulas are not recomputed)."""

    kind = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def load(self, path: Path, name: str) -> list[Document]:
        import openpyxl

        if not zipfile.is_zipfile(path):
            raise DocumentError(f"{path}: not an Excel .xlsx file (not a zip package; old .xls or renamed?); "
                                "skipped")
        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, ...
            raise DocumentError(f"{path}: the workbook cannot be read ({type(exc).__name__}: {exc}); "
                                "skipped") from exc
        out = TextBuilder()
        try:
            for sheet in workbook.worksheets:
                rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
                rows = [row for row in rows if any(cell.strip() for cell in row)]
                if rows:
                    out.heading(sheet.title, 1, "sheet")
                    out.table(rows)
        finally:
            workbook.close()
        return [out.document(name, path, "xlsx")]
