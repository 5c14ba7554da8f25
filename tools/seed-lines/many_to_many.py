from sqlalchemy import Table

enrollment_table = Table(  
"enrollments", Base.metadata,  
Column("student_id", Integer, ForeignKey("students.id")),  
Column("course_id", Integer, ForeignKey("courses.id"))  
)

class Student(Base):  
__tablename__ = "students"

    id = Column(Integer, primary_key=True)  
    name = Column(String, nullable=False)  
    courses = relationship("Course", secondary=enrollment_table, back_populates="students")  

class Course(Base):  
__tablename__ = "courses"

    id = Column(Integer, primary_key=True)  
    name = Column(String, nullable=False)  
    students = relationship("Student", secondary=enrollment_table, back_populates="courses")  

session = SessionLocal()

# Create students and courses
student1 = Student(name="John")  
course1 = Course(name="Python Programming")  
course2 = Course(name="Database Systems")

# Associate student with courses
student1.courses.append(course1)  
student1.courses.append(course2)  
session.add(student1)  
session.commit()

# Fetch courses for a student
student = session.query(Student).filter_by(name="John").first()  
print(student.courses)  # Output: [Course(name='Python Programming'), Course(name='Database Systems')]  
